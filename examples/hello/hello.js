// kryon run hello.js --call greet Ada
console.log("hello from JavaScript");

function greet(name) {
  return `hello, ${name}`;
}
