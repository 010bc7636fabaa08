package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/template"

	"github.com/theus-go/theus/internal/contract"
	"github.com/theus-go/theus/templates"
)

// docTemplate is the template of `theusgen doc`, under templates/.
const docTemplate = "doc/contract.md" + templates.Suffix

// cmdDoc prints a Markdown page about a contract: its processes, topics,
// state and types in tables, and a Mermaid graph of which process reads
// and writes which path and emits which topic. The page depends on the
// contract only (no date, no version), so it can be committed and checked
// like generated code.
func cmdDoc(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cf contractFlags
	flags := newFlagSet("doc", stderr, &cf)
	if err := parseFlags(flags, args, &cf); err != nil {
		return err
	}
	m, err := loadContract(ctx, cf, stderr)
	if err != nil {
		return err
	}
	if m.Package == "" {
		// Only for the title: a directory that names no package is not
		// an error here.
		m.Package, _ = defaultPackage(filepath.Join(cf.dir(), filepath.FromSlash(m.Output)))
	}
	source := filepath.ToSlash(cf.file)
	if m.DeclaredInGo {
		source = m.Source
	}
	var b bytes.Buffer
	if err := renderDoc(&b, m, source); err != nil {
		return err
	}
	_, err = stdout.Write(b.Bytes())
	return err
}

// loadContract reads and parses the contract that cf names: a YAML file,
// or the struct tags of a Go package. Contract errors are printed to
// stderr, one per line, and reported as errFindings.
func loadContract(ctx context.Context, cf contractFlags, stderr io.Writer) (*contract.Model, error) {
	m, err := parseContract(ctx, cf)
	if err != nil {
		return nil, reportContract(err, stderr)
	}
	return m, nil
}

// reportContract prints the contract errors of err, if it holds an
// ErrorList, and returns errFindings in their place; other errors are
// returned as they are.
func reportContract(err error, stderr io.Writer) error {
	var list contract.ErrorList
	if errors.As(err, &list) {
		fmt.Fprintln(stderr, list.Error())
		return errFindings
	}
	return err
}

// parseContract reads and parses the contract that cf names; contract
// errors are returned as a contract.ErrorList.
func parseContract(ctx context.Context, cf contractFlags) (*contract.Model, error) {
	if cf.tags != "" {
		return contract.LoadTags(ctx, cf.tags)
	}
	src, err := os.ReadFile(cf.file)
	if err != nil {
		return nil, fmt.Errorf("read contract: %w", err)
	}
	return contract.Parse(cf.file, src)
}

// renderDoc writes the Markdown of m; source is the contract's path as
// shown on the page.
func renderDoc(w io.Writer, m *contract.Model, source string) error {
	tmpl, err := template.New("doc").Option("missingkey=error").Funcs(template.FuncMap{
		"cell":  tableCell,
		"codes": codeList,
		"code":  code,
		"label": mermaidLabel,
	}).ParseFS(templates.FS, docTemplate)
	if err != nil {
		return err
	}
	return tmpl.ExecuteTemplate(w, filepath.Base(docTemplate), newDocPage(m, source))
}

// docPage is the data of the doc template.
type docPage struct {
	Source    string
	Package   string
	Processes []docProcess
	Topics    []docTopic
	State     []docState
	Types     []docType
	// Invariants and Rules have one row per rule, Errors one per process
	// that declares some.
	Invariants []docRule
	Rules      []docRule
	Errors     []docErrors
	Graph      docGraph
}

type docRule struct {
	Process, Path, OnFail, Message string
	Checks                         []string
}

type docErrors struct {
	Process string
	Errors  []string
}

// newDocRule describes rule r of process (empty for an invariant).
func newDocRule(process string, r *contract.Rule) docRule {
	d := docRule{Process: process, Path: r.Text, OnFail: "reject", Message: r.Message}
	if r.Warn {
		d.OnFail = "warn"
	}
	for _, c := range r.Checks {
		d.Checks = append(d.Checks, checkText(c))
	}
	return d
}

// checkText is check c as the doc shows it.
func checkText(c *contract.Check) string {
	switch c.Kind {
	case "min":
		return ">= " + c.Lit
	case "max":
		return "<= " + c.Lit
	case "min_len":
		return "length >= " + c.Lit
	case "max_len":
		return "length <= " + c.Lit
	case "regex":
		return "matches " + c.Regex
	case "one_of":
		return "one of " + strings.Join(c.OneOf, ", ")
	case "required":
		return "required"
	}
	return strings.Join(strings.Fields(c.Expr), " ")
}

type docProcess struct {
	Name, Semantic, Doc, Result string
	Inputs, Outputs, Emits      []string
}

type docTopic struct {
	Name, Payload, Key string
	EmittedBy          []string
}

type docState struct {
	Path, Type string
	Collection bool
	Key, Elem  string // for a collection
}

type docType struct {
	Name   string
	Fields []string // "name type"
}

// docGraph is the Mermaid graph: nodes in a fixed order (processes, then
// paths in order of first use, then topics) and edges process by process.
type docGraph struct {
	Nodes []docNode
	Edges []docEdge
}

type docNode struct {
	ID, Label string
	// Kind chooses the shape: "effect", "pure", "guide", "path" or "topic".
	Kind string
}

type docEdge struct {
	From, To string
	// Kind chooses the arrow: "reads", "writes" or "emits".
	Kind string
}

func newDocPage(m *contract.Model, source string) docPage {
	page := docPage{Source: source, Package: m.Package}
	emitters := map[*contract.Topic][]string{}
	for _, p := range m.Processes {
		dp := docProcess{Name: p.Name, Semantic: string(p.Semantic), Doc: p.Doc}
		if p.Result != nil {
			dp.Result = p.Result.Expr
		}
		for _, in := range p.Inputs {
			dp.Inputs = append(dp.Inputs, in.Text)
		}
		for _, out := range p.Outputs {
			dp.Outputs = append(dp.Outputs, out.Text)
		}
		for _, t := range p.Emits {
			dp.Emits = append(dp.Emits, t.Name)
			emitters[t] = append(emitters[t], p.Name)
		}
		page.Processes = append(page.Processes, dp)
		for _, r := range p.Rules {
			page.Rules = append(page.Rules, newDocRule(p.Name, r))
		}
		if len(p.Errors) > 0 {
			de := docErrors{Process: p.Name}
			for _, e := range p.Errors {
				de.Errors = append(de.Errors, e.Name)
			}
			page.Errors = append(page.Errors, de)
		}
	}
	for _, r := range m.Invariants {
		page.Invariants = append(page.Invariants, newDocRule("", r))
	}
	for _, t := range m.Topics {
		dt := docTopic{Name: t.Name, EmittedBy: emitters[t]}
		if t.Payload != nil {
			dt.Payload = t.Payload.Expr
		}
		if t.Key != nil {
			dt.Key = t.Key.Name
		}
		page.Topics = append(page.Topics, dt)
	}
	for _, f := range m.State {
		ds := docState{Path: string(f.Zone) + "." + f.Name, Collection: f.Collection}
		if f.Type != nil {
			ds.Type = f.Type.Expr
			if f.Collection && f.Type.Key != nil && f.Type.Elem != nil {
				ds.Key, ds.Elem = f.Type.Key.Expr, f.Type.Elem.Expr
			}
		}
		page.State = append(page.State, ds)
	}
	for _, s := range m.Types {
		dt := docType{Name: s.Name}
		for _, f := range s.Fields {
			if f.Type != nil {
				dt.Fields = append(dt.Fields, f.Name+" "+f.Type.Expr)
			}
		}
		page.Types = append(page.Types, dt)
	}
	page.Graph = newDocGraph(m)
	return page
}

func newDocGraph(m *contract.Model) docGraph {
	var g docGraph
	procIDs := make([]string, len(m.Processes))
	for i, p := range m.Processes {
		procIDs[i] = fmt.Sprintf("p%d", i+1)
		g.Nodes = append(g.Nodes, docNode{ID: procIDs[i], Label: p.Name, Kind: string(p.Semantic)})
	}
	pathIDs := map[string]string{}
	pathID := func(text string) string {
		id, ok := pathIDs[text]
		if !ok {
			id = fmt.Sprintf("s%d", len(pathIDs)+1)
			pathIDs[text] = id
			g.Nodes = append(g.Nodes, docNode{ID: id, Label: text, Kind: "path"})
		}
		return id
	}
	topicIDs := map[*contract.Topic]string{}
	for i, t := range m.Topics {
		topicIDs[t] = fmt.Sprintf("t%d", i+1)
	}
	for i, p := range m.Processes {
		for _, in := range p.Inputs {
			g.Edges = append(g.Edges, docEdge{From: pathID(in.Text), To: procIDs[i], Kind: "reads"})
		}
		for _, out := range p.Outputs {
			g.Edges = append(g.Edges, docEdge{From: procIDs[i], To: pathID(out.Text), Kind: "writes"})
		}
		for _, t := range p.Emits {
			g.Edges = append(g.Edges, docEdge{From: procIDs[i], To: topicIDs[t], Kind: "emits"})
		}
	}
	// Topics after the paths, whether emitted or not, so that node order
	// follows the tables.
	for _, t := range m.Topics {
		g.Nodes = append(g.Nodes, docNode{ID: topicIDs[t], Label: t.Name, Kind: "topic"})
	}
	return g
}

// tableCell makes s safe inside a Markdown table cell: pipes escaped,
// lines joined, blank lines kept as line breaks.
func tableCell(s string) string {
	s = strings.ReplaceAll(strings.TrimSpace(s), "|", `\|`)
	paras := strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n\n")
	for i, p := range paras {
		paras[i] = strings.Join(strings.Fields(p), " ")
	}
	return strings.Join(paras, "<br><br>")
}

// codeList formats names as code spans separated by commas, or a dash for
// none.
func codeList(names []string) string {
	if len(names) == 0 {
		return "—"
	}
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = code(n)
	}
	return strings.Join(parts, ", ")
}

// code formats s as a code span in a table cell, or a dash when s is empty.
func code(s string) string {
	if s == "" {
		return "—"
	}
	return "`" + strings.ReplaceAll(s, "|", `\|`) + "`"
}

// mermaidLabel quotes s as a Mermaid node label.
func mermaidLabel(s string) string {
	r := strings.NewReplacer(`"`, "#quot;", "\n", " ")
	return `"` + r.Replace(s) + `"`
}
