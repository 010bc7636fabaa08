package main

import (
	"testing"

	"github.com/theus-go/theus/internal/contract"
	"github.com/theus-go/theus/internal/gen"
)

// BenchmarkGenerate1000 is gen.Generate of the synthetic contract with
// 1,000 processes, what theusgen generate spends but for reading the
// contract and writing the file.
func BenchmarkGenerate1000(b *testing.B) {
	m, err := contract.Parse("contracts.yaml", []byte(Contract(1000)))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := gen.Generate(m); err != nil {
			b.Fatal(err)
		}
	}
}
