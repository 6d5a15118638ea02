var s = """
line one
  "quoted" %(not) \n
"""
System.print(s)
// expect: line one
// expect:   "quoted" %(not) \n
System.print("""single""") // expect: single
