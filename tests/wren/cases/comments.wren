// a line comment
/* a block comment */
/* nested /* block */ comment */
System.print(1 /* inline */ + 2) // expect: 3
/*
 multi
 line /* nested
 */
*/
System.print("after") // expect: after
