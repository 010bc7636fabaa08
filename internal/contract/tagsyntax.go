package contract

import (
	"strconv"
	"strings"
	"unicode"
)

// The text of struct tags and //theus: directives, with the position of
// every piece, so that a message points at the option at fault rather than
// at the start of the tag.

// span is a piece of Go source text and where it starts. When exact is
// false the columns inside the text are unknown (a tag written as an
// interpreted string with escapes): every piece is then placed at pos.
type span struct {
	text  string
	pos   Pos
	exact bool
}

// slice returns the part of s from byte i to byte j.
func (s span) slice(i, j int) span {
	p := s.pos
	if s.exact {
		p.Col += i
	}
	return span{text: s.text[i:j], pos: p, exact: s.exact}
}

// split returns the parts of s separated by sep, empty parts included.
func (s span) split(sep byte) []span {
	var out []span
	start := 0
	for i := 0; i <= len(s.text); i++ {
		if i == len(s.text) || s.text[i] == sep {
			out = append(out, s.slice(start, i))
			start = i + 1
		}
	}
	return out
}

// words returns the parts of s separated by spaces and tabs.
func (s span) words() []span {
	var out []span
	start := -1
	for i := 0; i <= len(s.text); i++ {
		blank := i == len(s.text) || s.text[i] == ' ' || s.text[i] == '\t'
		switch {
		case blank && start >= 0:
			out = append(out, s.slice(start, i))
			start = -1
		case !blank && start < 0:
			start = i
		}
	}
	return out
}

// trimSpace returns s without leading and trailing blanks.
func (s span) trimSpace() span {
	i := len(s.text) - len(strings.TrimLeftFunc(s.text, unicode.IsSpace))
	j := len(strings.TrimRightFunc(s.text, unicode.IsSpace))
	if j < i {
		j = i
	}
	return s.slice(i, j)
}

// lookupTag returns the value of key in the struct tag tag, as
// reflect.StructTag.Lookup does, and the byte offset of the value in tag.
// exact reports whether the value's bytes are those of tag from that
// offset on (no escapes in the quoted value).
func lookupTag(tag, key string) (value string, off int, exact, ok bool) {
	i := 0
	for i < len(tag) {
		for i < len(tag) && tag[i] == ' ' {
			i++
		}
		j := i
		for j < len(tag) && tag[j] > ' ' && tag[j] != ':' && tag[j] != '"' && tag[j] != 0x7f {
			j++
		}
		if j == i || j+1 >= len(tag) || tag[j] != ':' || tag[j+1] != '"' {
			return "", 0, false, false
		}
		name := tag[i:j]
		i = j + 1
		j = i + 1
		for j < len(tag) && tag[j] != '"' {
			if tag[j] == '\\' {
				j++
			}
			j++
		}
		if j >= len(tag) {
			return "", 0, false, false
		}
		quoted := tag[i : j+1]
		if name == key {
			v, err := strconv.Unquote(quoted)
			if err != nil {
				return "", 0, false, false
			}
			return v, i + 1, !strings.Contains(quoted, `\`), true
		}
		i = j + 1
	}
	return "", 0, false, false
}

// directives are the names of the theus directives.
var directives = []string{"process", "topic", "rule", "output"}

// directivePrefix starts every theus directive. Like //go: directives it
// has no space after the slashes, so go/ast leaves it out of doc text.
const directivePrefix = "//theus:"

// directive is one //theus:NAME ARGS comment line.
type directive struct {
	name string
	pos  Pos  // of the comment
	args span // the text after the name, trimmed
}

// parseDirective reads the comment text at pos, or reports false when it
// is no theus directive.
func parseDirective(text string, pos Pos) (directive, bool) {
	if !strings.HasPrefix(text, directivePrefix) {
		return directive{}, false
	}
	all := span{text: text, pos: pos, exact: true}
	rest := all.slice(len(directivePrefix), len(text))
	name, _, _ := strings.Cut(rest.text, " ")
	name, _, _ = strings.Cut(name, "\t")
	return directive{
		name: name,
		pos:  pos,
		args: rest.slice(len(name), len(rest.text)).trimSpace(),
	}, true
}

// SnakeName is the contract name of a Go identifier: its words in lower
// case, joined by "_" ("UpdateUserEmail" -> "update_user_email",
// "HTTPStatus" -> "http_status", "UserV2" -> "user_v2"). A capital starts
// a word after a lower-case letter or a digit, and ends a run of capitals
// when a lower-case letter follows it.
func SnakeName(s string) string {
	rs := []rune(s)
	var b strings.Builder
	for i, r := range rs {
		if i > 0 && unicode.IsUpper(r) {
			prev := rs[i-1]
			nextLower := i+1 < len(rs) && unicode.IsLower(rs[i+1])
			if unicode.IsLower(prev) || unicode.IsDigit(prev) || unicode.IsUpper(prev) && nextLower {
				b.WriteByte('_')
			}
		}
		b.WriteRune(unicode.ToLower(r))
	}
	return b.String()
}
