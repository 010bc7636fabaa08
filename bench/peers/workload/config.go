package workload

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"
)

// DefaultDSN is the PostgreSQL the server-based implementations use when
// neither -dsn nor THEUS_TEST_POSTGRES says otherwise: the service of the
// repository's tests.
const DefaultDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// DSN is THEUS_TEST_POSTGRES, or DefaultDSN.
func DSN() string {
	if v := os.Getenv("THEUS_TEST_POSTGRES"); v != "" {
		return v
	}
	return DefaultDSN
}

// Config is one run of the workload, as the flags of every implementation
// binary set it.
type Config struct {
	C        int           // producer goroutines
	Duration time.Duration // how long producers commit (unless N or Prefill)
	N        int           // if > 0, commit N transactions instead of running for Duration
	Relay    bool          // run the relay while producers commit
	Prefill  int           // if > 0, drain mode: commit Prefill transactions, then time the relay's drain
	Users    int           // users in the table, updated at random
	DSN      string        // PostgreSQL, for the server-based implementations
	Dir      string        // where the SQLite file's temporary directory goes ("" = os.TempDir())
	Poll     time.Duration // the polling interval of the server-based relays
	Wait     time.Duration // how long the relay may deliver nothing new before what is missing counts as lost
}

// ParseFlags reads a Config from the command line of an implementation
// binary; errors and -h go to w.
func ParseFlags(name string, args []string, w io.Writer) (Config, error) {
	var c Config
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(w)
	fs.IntVar(&c.C, "c", 8, "producer goroutines")
	fs.DurationVar(&c.Duration, "duration", 10*time.Second, "how long producers commit")
	fs.IntVar(&c.N, "n", 0, "commit this many transactions instead of running for -duration")
	fs.BoolVar(&c.Relay, "relay", true, "run the relay while producers commit (false: commits only)")
	fs.IntVar(&c.Prefill, "prefill", 0, "drain mode: commit this many transactions with no relay running, then time the relay's drain of the backlog")
	fs.IntVar(&c.Users, "users", 10000, "users, each transaction updates one at random")
	fs.StringVar(&c.DSN, "dsn", DSN(), "PostgreSQL (server-based implementations; default $THEUS_TEST_POSTGRES)")
	fs.StringVar(&c.Dir, "dir", "", "directory for the SQLite file's temporary directory (default the system's temp dir; must be on the disk to measure)")
	fs.DurationVar(&c.Poll, "poll", time.Millisecond, "how long the server-based relays sleep when they found less than a full batch")
	fs.DurationVar(&c.Wait, "wait", 30*time.Second, "how long the relay may deliver nothing new before what is missing counts as lost")
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	return c, c.validate()
}

func (c Config) validate() error {
	switch {
	case c.C < 1:
		return errors.New("-c must be at least 1")
	case c.Users < 1:
		return errors.New("-users must be at least 1")
	case c.N < 0 || c.Prefill < 0:
		return errors.New("-n and -prefill cannot be negative")
	case c.Prefill > 0 && c.N > 0:
		return errors.New("-prefill and -n exclude each other: -prefill commits exactly its count")
	case c.N == 0 && c.Prefill == 0 && c.Duration <= 0:
		return errors.New("-duration must be positive (or set -n)")
	case c.Poll <= 0 || c.Wait <= 0:
		return errors.New("-poll and -wait must be positive")
	}
	return nil
}
