package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/theus-go/theus/internal/lint"
)

// formats are the output formats of `theusgen lint --format`.
var formats = map[string]func(io.Writer, []lint.Finding) error{
	"text":   writeText,
	"json":   writeJSON,
	"github": writeGitHub,
	"sarif":  sarifWriter(lint.Rules, lintDocs),
}

// breakingFormats are the output formats of `theusgen breaking --format`:
// lint's, with the rules of breaking in SARIF.
var breakingFormats = map[string]func(io.Writer, []lint.Finding) error{
	"text":   writeText,
	"json":   writeJSON,
	"github": writeGitHub,
	"sarif":  sarifWriter(lint.BreakingRules, contractDocs),
}

// writeText writes one `file:line:col: [CODE] message` line per finding.
func writeText(w io.Writer, fs []lint.Finding) error {
	for _, f := range fs {
		if _, err := fmt.Fprintf(w, "%s:%d:%d: [%s] %s\n", f.File, f.Line, f.Col, f.Code, f.Message); err != nil {
			return err
		}
	}
	return nil
}

// writeJSON writes an array of findings (empty, not null, when clean).
func writeJSON(w io.Writer, fs []lint.Finding) error {
	if fs == nil {
		fs = []lint.Finding{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(fs)
}

// writeGitHub writes GitHub Actions workflow commands, which annotate the
// lines of a pull request.
func writeGitHub(w io.Writer, fs []lint.Finding) error {
	for _, f := range fs {
		level := "error"
		if f.Severity == lint.Warning {
			level = "warning"
		}
		_, err := fmt.Fprintf(w, "::%s file=%s,line=%d,col=%d::%s\n", level,
			ghProperty(filepath.ToSlash(f.File)), f.Line, f.Col, ghData("["+f.Code+"] "+f.Message))
		if err != nil {
			return err
		}
	}
	return nil
}

// ghData escapes the message of a workflow command.
func ghData(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A").Replace(s)
}

// ghProperty escapes a property value of a workflow command.
func ghProperty(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A", ":", "%3A", ",", "%2C").Replace(s)
}

// SARIF 2.1.0, the subset that code scanning services read.
type sarifLog struct {
	Schema  string     `json:"$schema"`
	Version string     `json:"version"`
	Runs    []sarifRun `json:"runs"`
}

type sarifRun struct {
	Tool    sarifTool     `json:"tool"`
	Results []sarifResult `json:"results"`
}

type sarifTool struct {
	Driver sarifDriver `json:"driver"`
}

type sarifDriver struct {
	Name           string      `json:"name"`
	InformationURI string      `json:"informationUri"`
	Rules          []sarifRule `json:"rules"`
}

type sarifRule struct {
	ID                   string       `json:"id"`
	Name                 string       `json:"name"`
	ShortDescription     sarifMessage `json:"shortDescription"`
	HelpURI              string       `json:"helpUri"`
	DefaultConfiguration struct {
		Level string `json:"level"`
	} `json:"defaultConfiguration"`
}

type sarifMessage struct {
	Text string `json:"text"`
}

type sarifResult struct {
	RuleID    string          `json:"ruleId"`
	RuleIndex int             `json:"ruleIndex"`
	Level     string          `json:"level"`
	Message   sarifMessage    `json:"message"`
	Locations []sarifLocation `json:"locations"`
}

type sarifLocation struct {
	PhysicalLocation struct {
		ArtifactLocation struct {
			URI string `json:"uri"`
		} `json:"artifactLocation"`
		Region struct {
			StartLine   int `json:"startLine"`
			StartColumn int `json:"startColumn"`
		} `json:"region"`
	} `json:"physicalLocation"`
}

const (
	lintDocs     = "https://github.com/theus-go/theus/blob/main/docs/lint.md"
	contractDocs = "https://github.com/theus-go/theus/blob/main/docs/contracts.md"
)

// sarifWriter writes SARIF with rules as the rules table, each with help
// at docs#code.
func sarifWriter(rules []lint.Rule, docs string) func(io.Writer, []lint.Finding) error {
	return func(w io.Writer, fs []lint.Finding) error { return writeSARIF(w, fs, rules, docs) }
}

func writeSARIF(w io.Writer, fs []lint.Finding, rules []lint.Rule, docs string) error {
	driver := sarifDriver{Name: "theusgen", InformationURI: "https://github.com/theus-go/theus", Rules: []sarifRule{}}
	index := map[string]int{}
	for i, r := range rules {
		sr := sarifRule{ID: r.Code, Name: r.Name, ShortDescription: sarifMessage{r.Summary},
			HelpURI: docs + "#" + strings.ToLower(r.Code)}
		sr.DefaultConfiguration.Level = string(r.Severity)
		driver.Rules = append(driver.Rules, sr)
		index[r.Code] = i
	}
	results := []sarifResult{}
	for _, f := range fs {
		r := sarifResult{RuleID: f.Code, RuleIndex: index[f.Code], Level: string(f.Severity), Message: sarifMessage{f.Message}}
		var loc sarifLocation
		loc.PhysicalLocation.ArtifactLocation.URI = filepath.ToSlash(f.File)
		loc.PhysicalLocation.Region.StartLine = f.Line
		loc.PhysicalLocation.Region.StartColumn = f.Col
		r.Locations = []sarifLocation{loc}
		results = append(results, r)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(sarifLog{
		Schema:  "https://json.schemastore.org/sarif-2.1.0.json",
		Version: "2.1.0",
		Runs:    []sarifRun{{Tool: sarifTool{Driver: driver}, Results: results}},
	})
}
