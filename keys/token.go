package keys

import "fmt"

// Token is a bearer credential such as a SAS token: whoever holds it may
// use it, so it never prints. Only credentials files and the machine's
// keyring (files kept 0600) serialize one, as the plain string.
type Token string

// String redacts the token.
func (Token) String() string { return "[redacted]" }

// GoString redacts the token.
func (Token) GoString() string { return "[redacted]" }

// Format redacts the token for every verb.
func (Token) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte("[redacted]")) }
