// split reports the line of the call.
var text = "a,b"
System.print(text.split(",")) // expect: [a, b]

text.split("") // expect runtime error: Delimiter must be a non-empty string.
