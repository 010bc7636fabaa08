package workload

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// clientCPU is the CPU time, user and system, this process has used.
func clientCPU() (float64, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("getrusage: %w", err)
	}
	return seconds(ru.Utime) + seconds(ru.Stime), nil
}

func seconds(tv syscall.Timeval) float64 { return float64(tv.Sec) + float64(tv.Usec)/1e6 }

// clockTicks is USER_HZ, the unit of the CPU times in /proc/<pid>/stat: 100
// on every Linux architecture Go supports (reading it needs sysconf, that
// is cgo).
const clockTicks = 100

// serverCPU reads the CPU time, user and system, of every process named
// "postgres" on this machine, per pid: the PostgreSQL server's postmaster,
// backends and background workers. A server in another pid namespace or
// on another machine is not seen (the figure is then 0).
func serverCPU() (map[int]float64, error) {
	dirs, err := filepath.Glob("/proc/[0-9]*")
	if err != nil {
		return nil, err
	}
	cpu := make(map[int]float64)
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, "stat"))
		if err != nil {
			continue // the process is gone
		}
		// pid (comm) state ppid ... utime stime: comm may hold spaces, so
		// the fields are counted from its closing parenthesis.
		open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
		if open < 0 || end < open || string(b[open+1:end]) != "postgres" {
			continue
		}
		f := bytes.Fields(b[end+1:])
		if len(f) < 13 {
			continue
		}
		utime, err1 := strconv.ParseUint(string(f[11]), 10, 64)
		stime, err2 := strconv.ParseUint(string(f[12]), 10, 64)
		pid, err3 := strconv.Atoi(filepath.Base(dir))
		if err1 != nil || err2 != nil || err3 != nil {
			continue
		}
		cpu[pid] = float64(utime+stime) / clockTicks
	}
	return cpu, nil
}

// serverCPUSince is the server's CPU time since before was read: each
// process's growth, and the whole time of processes that started since.
// The time of a process that ended in between is not counted.
func serverCPUSince(before map[int]float64) (float64, error) {
	after, err := serverCPU()
	if err != nil {
		return 0, err
	}
	var sum float64
	for pid, t := range after {
		sum += t - before[pid]
	}
	return sum, nil
}
