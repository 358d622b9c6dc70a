package herald

import "time"

// Published is the answer of a single publish (SPEC §4 and §10): 201 with
// id, seq, user and time; 200 with the first message's seq and Duplicate
// for a retried id; 202 with id and deliver_at for a scheduled message,
// which has no seq until JetStream stores it. herald publish prints it for
// both of its paths, HTTP and --nats.
type Published struct {
	ID   string `json:"id"`
	Seq  uint64 `json:"seq,omitempty"`
	User string `json:"user,omitempty"`
	// Time is the stored message's time; nil for a scheduled message, and
	// for a duplicate whose first copy could not be read.
	Time *time.Time `json:"time,omitempty"`
	// DeliverAt is when a scheduled message is stored.
	DeliverAt *time.Time `json:"deliver_at,omitempty"`
	Duplicate bool       `json:"duplicate,omitempty"`
}
