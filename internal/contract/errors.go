package contract

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Error is one contract error at a position in the contract source.
type Error struct {
	Pos Pos
	Msg string
}

func (e *Error) Error() string { return e.Pos.String() + ": " + e.Msg }

// ErrorList is every error found in one contract, sorted by position. Parse
// returns all of them at once so that a user fixes a file in one round trip
// instead of one error per run.
type ErrorList []*Error

// Error returns one "file:line:col: message" line per error.
func (l ErrorList) Error() string {
	lines := make([]string, len(l))
	for i, e := range l {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// add records an error at pos.
func (l *ErrorList) add(pos Pos, format string, args ...any) {
	*l = append(*l, &Error{Pos: pos, Msg: fmt.Sprintf(format, args...)})
}

// sorted returns the list sorted by file, line, column and message, without exact
// duplicates (one mistake can be reached twice, e.g. a type used in two
// places, and saying it twice at the same place helps nobody).
func (l ErrorList) sorted() ErrorList {
	s := slices.Clone(l)
	slices.SortStableFunc(s, func(a, b *Error) int {
		return cmp.Or(
			cmp.Compare(a.Pos.File, b.Pos.File), // struct tags span files
			cmp.Compare(a.Pos.Line, b.Pos.Line),
			cmp.Compare(a.Pos.Col, b.Pos.Col),
			cmp.Compare(a.Msg, b.Msg),
		)
	})
	return slices.CompactFunc(s, func(a, b *Error) bool { return *a == *b })
}

// otherAt is how a message at here names the position of another
// declaration: line:col in the same file, file:line:col in another one.
func otherAt(other, here Pos) string {
	if other.File != here.File {
		return other.String()
	}
	return fmt.Sprintf("%d:%d", other.Line, other.Col)
}
