// Package combine sends the messages of many goroutines over one gRPC
// stream without a sender goroutine: the goroutine that finds nobody
// sending sends what is queued, including what others queue meanwhile, in
// batches; the others only queue. A message therefore costs no hand-off to
// another goroutine (a futex wake and a context switch on the ring path),
// and messages queued while a send is in progress share the next one.
package combine

import "sync"

// Sender batches items of type T into sends. Its methods may be called
// concurrently.
type Sender[T any] struct {
	// Send sends one batch; the slice is reused once it returns. An error
	// stops nothing: later Adds call Send again (a broken stream keeps
	// failing, which its owner handles).
	Send func(batch []T) error
	// Max bounds a batch (0: no bound).
	Max int
	// Size, when set, is the size of an item, and MaxBytes bounds the sum
	// of a batch's sizes: a batch holds at least one item, and no more
	// once the next would pass MaxBytes.
	Size     func(T) int
	MaxBytes int

	mu      sync.Mutex
	queue   []T
	spare   []T
	sending bool
}

// Add queues item and, unless another goroutine is sending, sends the
// queue until it is empty. It returns the first send error it met.
func (s *Sender[T]) Add(item T) error {
	s.mu.Lock()
	s.queue = append(s.queue, item)
	if s.sending {
		s.mu.Unlock()
		return nil
	}
	s.sending = true
	var first error
	for len(s.queue) > 0 {
		batch := s.queue[:s.cut()]
		rest := s.queue[len(batch):]
		s.queue = append(s.spare[:0], rest...)
		s.mu.Unlock()
		err := s.Send(batch)
		clear(batch)
		s.mu.Lock()
		s.spare = batch[:0]
		if err != nil && first == nil {
			first = err
		}
	}
	s.sending = false
	s.mu.Unlock()
	return first
}

// cut is how many queued items the next batch takes; s.mu is held.
func (s *Sender[T]) cut() int {
	n := len(s.queue)
	if s.Max > 0 && n > s.Max {
		n = s.Max
	}
	if s.Size == nil || s.MaxBytes <= 0 {
		return n
	}
	total := 0
	for i := range n {
		total += s.Size(s.queue[i])
		if i > 0 && total > s.MaxBytes {
			return i
		}
	}
	return n
}
