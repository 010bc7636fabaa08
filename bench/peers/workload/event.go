package workload

import (
	"fmt"
	"strconv"
	"time"
)

// Note pads every event to about 200 bytes of JSON.
const Note = "peer benchmark: the same ~200-byte event for every implementation"

// Event is what every transaction emits, encoded as JSON, keyed by ID. Its
// fields and their order are fixed: theusbench/contracts.yaml declares the
// same payload, so every implementation delivers the same bytes but for
// the values.
type Event struct {
	ID        string `json:"id"`         // the user's ID: the event's key
	Tx        uint64 `json:"tx"`         // the transaction's ID, unique in a run
	StartNS   int64  `json:"start_ns"`   // Clock when the commit started
	Email     string `json:"email"`      // as the transaction set it
	Counter   int64  `json:"counter"`    // the user's counter after the update
	UpdatedAt int64  `json:"updated_at"` // as the transaction set it, Unix ns
	Note      string `json:"note"`       // Note
}

// Tx is one business transaction: update user User (count one more update,
// set Email and UpdatedAt) and emit Event(counter) in the same commit.
type Tx struct {
	ID        uint64 // from 1, unique in a run; 0 is the warm-up transaction
	User      string // UserID of the user to update
	Email     string
	StartNS   int64 // Clock when the commit started
	UpdatedAt int64 // wall clock, Unix ns
}

// Event is the event of t once the user's counter reached counter.
func (t *Tx) Event(counter int64) Event {
	return Event{ID: t.User, Tx: t.ID, StartNS: t.StartNS, Email: t.Email, Counter: counter, UpdatedAt: t.UpdatedAt, Note: Note}
}

// UserID is the ID of user i of the users every implementation starts
// with (0 ≤ i < Config.Users).
func UserID(i int) string { return fmt.Sprintf("u-%05d", i) }

// InitialEmail is the email of user id before any transaction.
func InitialEmail(id string) string { return id + "@example.com" }

// email is the email transaction tx sets on user id.
func email(buf []byte, id string, tx uint64) ([]byte, string) {
	buf = append(buf[:0], id...)
	buf = append(buf, '+')
	buf = strconv.AppendUint(buf, tx, 10)
	buf = append(buf, "@example.com"...)
	return buf, string(buf)
}

// base is the origin of Clock.
var base = time.Now()

// Clock reads the monotonic clock in nanoseconds since the process
// started: the time that events carry (StartNS) and latencies are
// measured with, immune to wall-clock steps.
func Clock() int64 { return int64(time.Since(base)) }
