System.print("ok")
var s = "never closed // expect error
