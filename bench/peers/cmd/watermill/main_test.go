package main

import (
	"testing"

	"github.com/theus-go/theus/bench/peers/internal/pgsetup"
	"github.com/theus-go/theus/bench/peers/workload/workloadtest"
)

func TestDeliversEveryEventOnce(t *testing.T) { workloadtest.Exercise(t, impl, pgsetup.TestDSN(t)) }
