class Animal {
  construct new(name) {
    _name = name
  }
  name { _name }
  speak { "..." }
  describe { "%(name) says %(speak)" }
}
class Dog is Animal {
  construct new(name, breed) {
    super(name)
    _breed = breed
  }
  speak { "Woof" }
  breed { _breed }
  describe { super.describe + " (%(_breed))" }
}
class Puppy is Dog {
  construct new(name) {
    super(name, "puppy")
  }
  speak { super.speak + "!" }
}
var a = Animal.new("generic")
var d = Dog.new("Rex", "lab")
var p = Puppy.new("Bit")
System.print(a.describe) // expect: generic says ...
System.print(d.describe) // expect: Rex says Woof (lab)
System.print(p.describe) // expect: Bit says Woof! (puppy)
System.print(p.name) // expect: Bit
System.print(p is Animal) // expect: true
System.print(p is Dog) // expect: true
System.print(d is Puppy) // expect: false
System.print(Puppy.supertype) // expect: Dog
System.print(Puppy.supertype.supertype) // expect: Animal
