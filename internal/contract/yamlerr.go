package contract

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// yaml.v3 reports a syntax error as "yaml: line N: problem", without the
// column it knows, and N is not reliable:
//   - marks are 0-based and a mark on the first line counts as "no line";
//   - when the problem has a context (the quoted string or the collection
//     being parsed), N is the context's line, else the problem's;
//   - scanner errors add 1 to N, parser errors do not, so parser errors are
//     reported one line too early.
//
// syntaxError works around all three without touching yaml.v3's internals.
// It parses the source again behind one extra blank line, so that no mark
// lies on the first line: N is then the line of the context, or of the
// problem when there is none, and the problem is on that line or after it.
// It then looks for a prefix of the file, in whole lines, that fails with
// the same error and context while the prefix one line shorter does not:
// the problem is on that prefix's last line. An unclosed quote or flow
// collection thus points at where it was left open (the prefix ends there
// and fails the same way), and a bad indentation deep inside a mapping
// points at the bad line, not at the start of the mapping.
//
// Every prefix that includes the problem's line fails the same way (the
// parser stops there whatever follows), so a binary search finds such a
// prefix in a few parses; a shorter prefix may
// also fail the same way (cut inside an unclosed construct), which can only
// move the answer back to the construct's start, never before the context.
//
// The column is found the same way within the line (syntaxOffset): the
// shortest prefix of the line that fails the same way ends at the problem.

// parserProblems are the messages of yaml.v3's parser (as opposed to its
// scanner), from parserc.go: they are the ones whose line is 0-based.
var parserProblems = map[string]bool{
	"did not find expected <stream-start>":   true,
	"did not find expected <document start>": true,
	"found undefined tag handle":             true,
	"did not find expected node content":     true,
	"did not find expected '-' indicator":    true,
	"did not find expected key":              true,
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
	"found duplicate %YAML directive":        true,
	"found incompatible YAML document":       true,
	"found duplicate %TAG directive":         true,
}

var yamlLineRE = regexp.MustCompile(`^yaml: (?:line (\d+): )?`)

// splitYAMLError returns the line yaml.v3 gives in err (0 when it gives
// none) and the message without the "yaml: line N: " prefix.
func splitYAMLError(err error) (line int, msg string) {
	s := err.Error()
	m := yamlLineRE.FindStringSubmatch(s)
	if m == nil {
		return 0, s
	}
	if m[1] != "" {
		line, _ = strconv.Atoi(m[1])
	}
	return line, s[len(m[0]):]
}

// checkSyntax parses every document of src and returns the first error.
func checkSyntax(src []byte) error {
	dec := yaml.NewDecoder(bytes.NewReader(src))
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

var utf8BOM = []byte("\xef\xbb\xbf")

// shiftedError parses src behind one blank line (after the byte order mark,
// which must stay first) and returns yaml.v3's line and message, or ok ==
// false when that parse succeeds.
func shiftedError(src []byte) (line int, msg string, ok bool) {
	var shifted []byte
	if bytes.HasPrefix(src, utf8BOM) {
		shifted = append(append(append(shifted, utf8BOM...), '\n'), src[len(utf8BOM):]...)
	} else {
		shifted = append(append(shifted, '\n'), src...)
	}
	err := checkSyntax(shifted)
	if err == nil {
		return 0, "", false
	}
	line, msg = splitYAMLError(err)
	return line, msg, true
}

// syntaxError converts err, a yaml.v3 parse error for src, into an Error at
// the line and column where the problem is, with a hint for the usual
// causes (see syntaxHint).
func syntaxError(file string, src []byte, err error) *Error {
	line, off, msg, hint := locateSyntaxError(src, err)
	if hint != "" {
		msg += "; " + hint
	}
	col := utf8.RuneCount(lineText(splitLines(src), line)[:off]) + 1
	return &Error{Pos: Pos{File: file, Line: line, Col: col}, Msg: msg}
}

// locateSyntaxError returns the line (1-based) and the byte offset in it
// of err, a yaml.v3 parse error for src, its message and a hint ("" when
// none fits).
func locateSyntaxError(src []byte, err error) (line, off int, msg, hint string) {
	origLine, msg := splitYAMLError(err)
	lines := splitLines(src)
	if name, ok := strings.CutPrefix(msg, "unknown anchor '"); ok {
		// The composer, not the parser, finds this one and gives no line.
		line, off = aliasPos(lines, strings.TrimSuffix(name, "' referenced"))
	} else {
		line = max(1, min(syntaxLine(src, lines, origLine, msg), len(lines)))
		off = syntaxOffset(lines, line, msg)
	}
	return line, off, msg, syntaxHint(msg, lines, line, off)
}

// lineText returns line n (1-based) of lines without its line break, nor
// the byte order mark that may start the first line: what the columns of
// the line count.
func lineText(lines [][]byte, n int) []byte {
	text := bytes.TrimRight(lines[n-1], "\r\n")
	if n == 1 {
		text = bytes.TrimPrefix(text, utf8BOM)
	}
	return text
}

func syntaxLine(src []byte, lines [][]byte, origLine int, msg string) int {
	shiftedLine, shiftedMsg, ok := shiftedError(src)
	if !ok || shiftedMsg != msg || shiftedLine == 0 {
		// Not expected: the blank line changed the outcome. yaml.v3's own
		// line is the best we have.
		return origLine
	}
	// Parser errors count lines from 0, which the extra line compensates
	// for; scanner errors count from 1, so undo the extra line.
	start := shiftedLine
	if !parserProblems[msg] {
		start--
	}
	sameError := func(k int) bool {
		l, m, ok := shiftedError(bytes.Join(lines[:k], nil))
		return ok && m == msg && l == shiftedLine
	}
	lo := max(start, 1)
	if lo > len(lines) || !sameError(len(lines)) {
		return start
	}
	return lo + sort.Search(len(lines)-lo, func(i int) bool { return sameError(lo + i) })
}

// syntaxOffset returns the byte offset in line (1-based) of the problem
// that msg describes. The parser stops at the problem, so the shortest
// prefix of the line that fails the same way after the lines before it
// ends there (the same search as syntaxLine's, within the line). Inside
// […] or {…} every prefix would fail for want of the closing brackets, so
// the search closes what the prefix leaves open. A few problems are shown
// elsewhere: a block that is not indented right at the line's first
// character, a collection that is not closed at its opening bracket, a
// tag at its start.
func syntaxOffset(lines [][]byte, line int, msg string) int {
	text := lineText(lines, line)
	indent := len(text) - len(bytes.TrimLeft(text, " \t"))
	switch msg {
	case "did not find expected key", "did not find expected '-' indicator",
		"found duplicate %YAML directive", "found duplicate %TAG directive", "found incompatible YAML document":
		return indent
	}
	before := bytes.Join(lines[:line-1], nil)
	want, _, _ := shiftedError(bytes.Join(lines[:line], nil))
	sameError := func(k int) bool {
		prefix := append(append(slices.Clip(before), text[:k]...), closers(lines, openFlows(lines, line, k))...)
		l, m, ok := shiftedError(prefix)
		return ok && m == msg && l == want
	}
	if len(text) == 0 || !sameError(len(text)) {
		// Closed, the line is fine: the problem is a bracket left open.
		if l, off, ok := unclosed(lines, line); ok && l == line {
			return off
		}
		return indent
	}
	off := sort.Search(len(text), func(k int) bool { return sameError(k + 1) })
	if off > 0 && text[off] == ' ' && text[off-1] == ':' {
		off-- // ": " is one token, which "x:}" is not
	}
	if msg == "found undefined tag handle" {
		// The search stops inside the tag; the tag starts at its '!'.
		off = bytes.LastIndexAny(text[:off+1], " \t") + 1
	}
	return off
}

// splitLines splits src after each newline, keeping the newlines, so that
// joining a prefix of the result gives a prefix of src.
func splitLines(src []byte) [][]byte {
	return bytes.SplitAfter(bytes.TrimSuffix(src, []byte("\n")), []byte("\n"))
}

// aliasPos returns the line and byte offset of the first use of alias
// *name, or 1, 0.
func aliasPos(lines [][]byte, name string) (line, off int) {
	re := regexp.MustCompile(`\*` + regexp.QuoteMeta(name) + `(?:$|[\s,\[\]{}])`)
	for i := range lines {
		if loc := re.FindIndex(lineText(lines, i+1)); loc != nil {
			return i + 1, loc[0]
		}
	}
	return 1, 0
}

// checkEncoding reports the first byte sequence that yaml.v3 would refuse
// before parsing: invalid UTF-8 or a control character. yaml.v3 reports
// these without any position, and they are easy to locate exactly.
func checkEncoding(file string, src []byte) *Error {
	line, col := 1, 1
	for i := 0; i < len(src); {
		r, size := utf8.DecodeRune(src[i:])
		pos := Pos{File: file, Line: line, Col: col}
		switch {
		case r == utf8.RuneError && size == 1:
			return &Error{Pos: pos, Msg: "invalid UTF-8 encoding (contract files must be UTF-8)"}
		case isControl(r):
			return &Error{Pos: pos, Msg: fmt.Sprintf("control character %U is not allowed", r)}
		}
		if r == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
		i += size
	}
	return nil
}

// isControl reports whether YAML refuses r in a stream (YAML 1.2 §5.1: only
// tab, line breaks and printable characters are allowed).
func isControl(r rune) bool {
	switch {
	case r == '\t' || r == '\n' || r == '\r' || r == 0x85:
		return false
	case r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f):
		return true
	case r == 0xfffe || r == 0xffff:
		return true
	}
	return false
}
