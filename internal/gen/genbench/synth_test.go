package main

import (
	"testing"

	"github.com/theus-go/theus/internal/contract"
	"github.com/theus-go/theus/internal/gen"
)

// The synthetic contract is valid and generates, at the shape it claims.
func TestContract(t *testing.T) {
	m, err := contract.Parse("contracts.yaml", []byte(Contract(30)))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Types) != synthTypes || len(m.State) != synthFields || len(m.Topics) != synthTopics || len(m.Processes) != 30 {
		t.Fatalf("%d types, %d state fields, %d topics, %d processes", len(m.Types), len(m.State), len(m.Topics), len(m.Processes))
	}
	colls := 0
	for _, f := range m.State {
		if f.Collection {
			colls++
		}
	}
	if colls != synthCollections {
		t.Fatalf("%d collections, want %d", colls, synthCollections)
	}
	for _, p := range m.Processes {
		if len(p.Args) == 0 || len(p.Inputs) != 2 || len(p.Outputs) != 1 || len(p.Emits) != 1 {
			t.Fatalf("process %s: %d args, %d inputs, %d outputs, %d emits", p.Name, len(p.Args), len(p.Inputs), len(p.Outputs), len(p.Emits))
		}
	}
	if _, err := gen.Generate(m); err != nil {
		t.Fatal(err)
	}
}
