System.print(notDefined) // expect error
