package contract

import (
	"go/token"
	"strings"
	"unicode"
	"unicode/utf8"
)

// initialisms are the words that Go style writes in all capitals (golint's
// list), so that generated names read like hand-written Go: MemberID, not
// MemberId.
var initialisms = map[string]bool{
	"ACL": true, "API": true, "ASCII": true, "CPU": true, "CSS": true,
	"DNS": true, "EOF": true, "GUID": true, "HTML": true, "HTTP": true,
	"HTTPS": true, "ID": true, "IP": true, "JSON": true, "LHS": true,
	"QPS": true, "RAM": true, "RHS": true, "RPC": true, "SLA": true,
	"SMTP": true, "SQL": true, "SSH": true, "TCP": true, "TLS": true,
	"TTL": true, "UDP": true, "UI": true, "UID": true, "UUID": true,
	"URI": true, "URL": true, "UTF8": true, "VM": true, "XML": true,
	"XMPP": true, "XSRF": true, "XSS": true,
}

// GoName converts a contract name to an exported Go identifier: every run of
// letters and digits is a word, everything else separates words, and each
// word gets an upper-case first letter ("item-added.v2" -> "ItemAddedV2").
// A word written entirely in lower case that is a Go initialism is written in
// capitals ("member_id" -> "MemberID"). Capitals already in a word are kept
// ("UserUpdated", "memberID" -> "MemberID"), and a word starting with a digit
// is kept as is.
//
// The result may be empty or start with a digit; callers check it with
// validGoName because the contract, not GoName, is at fault then.
func GoName(s string) string {
	var b strings.Builder
	for _, w := range strings.FieldsFunc(s, func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	}) {
		if up := strings.ToUpper(w); w == strings.ToLower(w) && initialisms[up] {
			b.WriteString(up)
			continue
		}
		r, size := utf8.DecodeRuneInString(w)
		b.WriteRune(unicode.ToUpper(r))
		b.WriteString(w[size:])
	}
	return b.String()
}

// validGoName reports whether a GoName result can be used as the exported
// identifier of a generated declaration. It fails for names with no letters
// or digits, names starting with a digit and letters without an upper case.
func validGoName(g string) bool {
	return token.IsIdentifier(g) && token.IsExported(g)
}

// predeclared are Go's predeclared identifiers. A contract may not use them
// as type names or import aliases: the generated file would shadow them and
// stop compiling in confusing ways.
var predeclared = map[string]bool{
	"any": true, "bool": true, "byte": true, "comparable": true,
	"complex64": true, "complex128": true, "error": true, "float32": true,
	"float64": true, "int": true, "int8": true, "int16": true, "int32": true,
	"int64": true, "rune": true, "string": true, "uint": true, "uint8": true,
	"uint16": true, "uint32": true, "uint64": true, "uintptr": true,
	"true": true, "false": true, "iota": true, "nil": true,
	"append": true, "cap": true, "clear": true, "close": true, "complex": true,
	"copy": true, "delete": true, "imag": true, "len": true, "make": true,
	"max": true, "min": true, "new": true, "panic": true, "print": true,
	"println": true, "real": true, "recover": true,
}

// isPlainIdent reports whether s can be written as an identifier in Go
// source without shadowing anything predeclared.
func isPlainIdent(s string) bool {
	return token.IsIdentifier(s) && s != "_" && !predeclared[s]
}
