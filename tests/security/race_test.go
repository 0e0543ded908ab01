package security

// loopOps are the child operations that loop: they run in the child, as
// another user, against a mount while the test changes the backing
// directory, and report what they saw as their output.
var loopOps = map[string]func(op) (string, error){}
