# kryon run hello.py --call greet Ada
def greet(name):
    return f"hello, {name}"


if __name__ == "__main__":
    print("hello from Python")
