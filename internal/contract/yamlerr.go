package contract

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// yaml.v3 reports a syntax error as "yaml: line N: problem", and N is not
// reliable:
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

// syntaxError converts err, a yaml.v3 parse error for src, into an Error on
// the line where the problem is, at column 1.
func syntaxError(file string, src []byte, err error) *Error {
	origLine, msg := splitYAMLError(err)
	lines := splitLines(src)
	line := syntaxLine(src, lines, origLine, msg)
	if name, ok := strings.CutPrefix(msg, "unknown anchor '"); ok {
		// The composer, not the parser, finds this one and gives no line.
		line = aliasLine(lines, strings.TrimSuffix(name, "' referenced"))
	}
	line = max(1, min(line, len(lines)))
	return &Error{Pos: Pos{File: file, Line: line, Col: 1}, Msg: msg}
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
	lo, hi := max(start, 1), len(lines)
	if lo > hi || !sameError(hi) {
		return start
	}
	for lo < hi {
		mid := lo + (hi-lo)/2
		if sameError(mid) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}

// splitLines splits src after each newline, keeping the newlines, so that
// joining a prefix of the result gives a prefix of src.
func splitLines(src []byte) [][]byte {
	return bytes.SplitAfter(bytes.TrimSuffix(src, []byte("\n")), []byte("\n"))
}

// aliasLine returns the line of the first use of alias *name, or 1.
func aliasLine(lines [][]byte, name string) int {
	re := regexp.MustCompile(`\*` + regexp.QuoteMeta(name) + `(?:$|[\s,\[\]{}])`)
	for i, l := range lines {
		if re.Match(l) {
			return i + 1
		}
	}
	return 1
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
