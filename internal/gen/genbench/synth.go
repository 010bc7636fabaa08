package main

import (
	"fmt"
	"strings"
)

// The shape of the synthetic contract: what issue 15 measured.
const (
	synthTypes       = 50
	synthFields      = 200 // state fields, the collections included
	synthCollections = 20
	synthTopics      = 50
)

// Contract returns a contract of 50 types, 200 state fields (20 of them
// collections), 50 topics and n processes, each with arguments, two
// inputs, one output and one emitted topic. Types hold strings, numbers,
// a slice and (but the first) the type before them, so encoders, clones
// and views have some depth. Processes cycle through fields and topics,
// so every field and topic is used once n is large enough.
func Contract(n int) string {
	var b strings.Builder
	b.WriteString("version: 1\npackage: big\n\ntypes:\n")
	for i := range synthTypes {
		fmt.Fprintf(&b, "  T%d:\n    fields: {id: string, n: int64, score: float64, tags: \"[]string\"", i)
		if i > 0 {
			fmt.Fprintf(&b, ", prev: T%d", i-1)
		}
		b.WriteString("}\n")
	}
	b.WriteString("\nstate:\n  domain:\n")
	plain := synthFields - synthCollections
	for i := range plain {
		fmt.Fprintf(&b, "    f%d: %s\n", i, fieldType(i))
	}
	for i := range synthCollections {
		fmt.Fprintf(&b, "    c%d: {map: T%d, key: string}\n", i, i%synthTypes)
	}
	b.WriteString("\ntopics:\n")
	for i := range synthTopics {
		fmt.Fprintf(&b, "  topic.t%d:\n    payload: T%d\n    key: id\n", i, i%synthTypes)
	}
	b.WriteString("\nprocesses:\n")
	for i := range n {
		in1, in2, out := i%plain, (i+1)%plain, (i+2)%plain
		if i%10 == 9 { // one process in ten writes a collection
			out = -1
		}
		fmt.Fprintf(&b, "  p%d:\n    args: {id: string, amount: int64}\n", i)
		fmt.Fprintf(&b, "    inputs: [domain.f%d, domain.f%d]\n", in1, in2)
		if out < 0 {
			fmt.Fprintf(&b, "    outputs: [domain.c%d]\n", i%synthCollections)
		} else {
			fmt.Fprintf(&b, "    outputs: [domain.f%d]\n", out)
		}
		fmt.Fprintf(&b, "    emits: [topic.t%d]\n", i%synthTopics)
	}
	return b.String()
}

// fieldType is the type of the plain state field i: ints, strings and
// declared types in turn.
func fieldType(i int) string {
	switch i % 3 {
	case 0:
		return "int64"
	case 1:
		return "string"
	}
	return fmt.Sprintf("T%d", i%synthTypes)
}
