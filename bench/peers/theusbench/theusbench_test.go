package theusbench_test

import (
	"testing"

	"github.com/theus-go/theus/bench/peers/internal/pgsetup"
	"github.com/theus-go/theus/bench/peers/theusbench"
	"github.com/theus-go/theus/bench/peers/workload/workloadtest"
)

func TestMemory(t *testing.T) { workloadtest.Exercise(t, theusbench.Memory, "") }

func TestSQLite(t *testing.T) { workloadtest.Exercise(t, theusbench.SQLite, "") }

func TestPostgres(t *testing.T) {
	workloadtest.Exercise(t, theusbench.Postgres, pgsetup.TestDSN(t))
}
