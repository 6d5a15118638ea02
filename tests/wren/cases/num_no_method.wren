1.foo // expect runtime error: Num does not implement 'foo'.
