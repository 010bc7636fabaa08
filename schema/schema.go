// Package schema holds the JSON Schema (draft 2020-12) of contracts.yaml,
// version 1, and validates contracts against it.
//
// The schema is for editors and other tools: it describes the shape of the
// file so that an editor can complete keys and flag typos as you type.
// theusgen itself does not use it; its parser is the authority, and checks
// what a schema cannot (that names, paths and types resolve, that generated
// names do not collide). The tests of this package keep the two in
// agreement: every contract in the repository that theusgen accepts must
// validate.
//
// Point the YAML language server at the schema with a first line such as
//
//	# yaml-language-server: $schema=https://theus-go.github.io/schema/contracts-v1.json
package schema

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"
)

// URL is the schema's $id, the address to give the YAML language server.
const URL = "https://theus-go.github.io/schema/contracts-v1.json"

// ContractsV1 is the schema itself, the bytes of contracts-v1.json.
//
//go:embed contracts-v1.json
var ContractsV1 []byte

var compiled = sync.OnceValues(func() (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(ContractsV1))
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat() // "format": "regex" is then checked, as theusgen will
	if err := c.AddResource(URL, doc); err != nil {
		return nil, err
	}
	return c.Compile(URL)
})

// Compile returns the compiled schema. It is compiled once.
func Compile() (*jsonschema.Schema, error) { return compiled() }

// ValidateYAML validates the contract src, a YAML document, against the
// schema. The error of an invalid contract is a *jsonschema.ValidationError
// listing every violation by JSON pointer.
func ValidateYAML(src []byte) error {
	sch, err := Compile()
	if err != nil {
		return fmt.Errorf("compile schema: %w", err)
	}
	var v any
	if err := yaml.Unmarshal(src, &v); err != nil {
		return err
	}
	// Through encoding/json so that the validator sees JSON's own types:
	// numbers, strings, booleans, null, []any and map[string]any.
	b, err := json.Marshal(jsonValue(v))
	if err != nil {
		return err
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		return err
	}
	return sch.Validate(inst)
}

// jsonValue turns what yaml.v3 decodes into a value encoding/json accepts:
// mappings with keys that are not strings (1: x) get their keys formatted,
// as YAML keys are text to theusgen too.
func jsonValue(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			v[k] = jsonValue(e)
		}
		return v
	case map[any]any:
		m := make(map[string]any, len(v))
		for k, e := range v {
			m[fmt.Sprint(k)] = jsonValue(e)
		}
		return m
	case []any:
		for i, e := range v {
			v[i] = jsonValue(e)
		}
		return v
	}
	return v
}
