// The file format: the header, the framing and encoding of records, and
// the replay of a file (at open, and by Pending) that skips damage and cuts
// a torn tail.

package journal

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"path/filepath"
	"slices"
	"time"

	"github.com/ringside/ringside/core/internal/flock"
)

const (
	magic     = "ringside journal"
	version   = 1
	headerLen = len(magic) + 4
	// frameLen is the length and CRC in front of every record.
	frameLen = 8
	// maxRecord bounds a record's length: a longer one is a corrupt tail.
	maxRecord = 64 << 20
)

// Record kinds, the first byte of a record.
const (
	kindAppend    byte = 1
	kindDelivered byte = 2
	kindFinish    byte = 3
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// header returns the bytes a journal file starts with: magic and version.
func header() []byte { return binary.LittleEndian.AppendUint32([]byte(magic), version) }

// appendRecord appends the record of o to b.
func appendRecord(b []byte, o *op) []byte {
	start := len(b)
	b = append(b, 0, 0, 0, 0, 0, 0, 0, 0, o.kind)
	b = appendString(b, o.key)
	switch o.kind {
	case kindAppend:
		b = binary.LittleEndian.AppendUint64(b, uint64(o.deadline))
		b = append(b, o.data...)
	case kindDelivered:
		b = appendString(b, o.notifier)
		b = appendString(b, o.token)
	}
	body := b[start+frameLen:]
	binary.LittleEndian.PutUint32(b[start:], uint32(len(body)))
	binary.LittleEndian.PutUint32(b[start+4:], crc32.Checksum(body, castagnoli))
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.LittleEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

// recordSize is the size of the record of o.
func recordSize(o *op) int64 {
	n := frameLen + 1 + 4 + len(o.key)
	switch o.kind {
	case kindAppend:
		n += 8 + len(o.data)
	case kindDelivered:
		n += 4 + len(o.notifier) + 4 + len(o.token)
	}
	return int64(n)
}

// minBody is the smallest record body: a kind and a key's length.
const minBody = 1 + 4

// window is how much of the file a scanner reads at once.
const window = 256 << 10

// record is a decoded record; its byte slices point into the scanner's
// window.
type record struct {
	kind            byte
	key             []byte
	deadline        int64
	data            []byte
	notifier, token []byte
}

// damage is a stretch of bad bytes a scanner skipped, [off, end), in the
// middle of the records: whole records follow it.
type damage struct {
	off, end int64
	// records is how many records the stretch held, when the frames'
	// lengths tell (they lead from off to end exactly); 0 when they do
	// not, and only the bytes are known.
	records int
}

// scanner reads the records of a journal file one by one. A record that is
// not whole and well formed (a short frame, an absurd length, a bad CRC,
// fields that do not fit) is a torn tail if no whole record can be found
// after it, and damage otherwise: the scanner skips it and resumes at the
// next whole record (see resync).
type scanner struct {
	f      io.ReaderAt
	limit  int64
	win    []byte // the file's bytes from winOff
	winOff int64
	buf    []byte
	off    int64 // where the current record starts
	end    int64 // where it ends: the good records end here so far
	rec    record
	damage []damage
}

// newScanner reads the records of f that lie before limit.
func newScanner(f io.ReaderAt, limit int64) *scanner {
	return &scanner{f: f, limit: limit, end: int64(headerLen)}
}

// scan reads the next record, skipping damage. It returns false at the end
// of the records: the end of the file, or a tail in which no whole record
// can be found. An error is a failure to read.
func (s *scanner) scan() (bool, error) {
	s.off = s.end
	end, ok, err := s.parse(s.off)
	if err != nil {
		return false, err
	}
	if !ok {
		next, n, found, err := s.resync(s.off)
		if err != nil || !found {
			return false, err
		}
		s.damage = append(s.damage, damage{s.off, next, n})
		s.off = next
		// resync parsed it; parse it again, its slices were overwritten.
		if end, ok, err = s.parse(next); err != nil || !ok {
			return false, err
		}
	}
	s.end = end
	return true, nil
}

// at returns the n bytes of the file at off, which the caller knows lie
// before limit. The slice is valid until the next call. It returns nil if
// the file is shorter than that (it shrank since its size was read).
func (s *scanner) at(off int64, n int) ([]byte, error) {
	if off >= s.winOff && off+int64(n) <= s.winOff+int64(len(s.win)) {
		return s.win[off-s.winOff:][:n], nil
	}
	size := int(min(max(int64(n), window), s.limit-off))
	s.buf = slices.Grow(s.buf[:0], size)[:size]
	m, err := s.f.ReadAt(s.buf, off)
	s.win, s.winOff = s.buf[:m], off
	if m < n {
		if err == nil || err == io.EOF {
			return nil, nil
		}
		return nil, err
	}
	return s.win[:n], nil
}

// parse decodes the record at off into s.rec if a whole, well-formed one
// lies there, and returns where it ends. It checks the cheap things (the
// length, the kind, the key's length) before the CRC, so that looking for
// a record at every offset of a damaged stretch costs little.
func (s *scanner) parse(off int64) (end int64, ok bool, err error) {
	if s.limit-off < frameLen+minBody {
		return 0, false, nil
	}
	head, err := s.at(off, frameLen+minBody)
	if head == nil || err != nil {
		return 0, false, err
	}
	n := int64(binary.LittleEndian.Uint32(head))
	if n < minBody || n > maxRecord || n > s.limit-off-frameLen {
		return 0, false, nil
	}
	if k := head[frameLen]; k < kindAppend || k > kindFinish {
		return 0, false, nil
	}
	if int64(binary.LittleEndian.Uint32(head[frameLen+1:])) > n-minBody {
		return 0, false, nil
	}
	b, err := s.at(off, frameLen+int(n))
	if b == nil || err != nil {
		return 0, false, err
	}
	body := b[frameLen:]
	if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(b[4:]) {
		return 0, false, nil
	}
	rec, ok := decode(body)
	if !ok {
		return 0, false, nil
	}
	s.rec = rec
	return off + frameLen + n, true, nil
}

// resync finds where whole records resume after the bad record at off, and
// how many records the bad stretch held (0: it cannot tell). It reports
// false if none resume: the bad record begins a torn tail. Records carry
// no sync marker, so it looks in two ways, the first one first:
//
//   - by the frames' lengths: if the bad record's length is intact (its
//     body was damaged), the next record starts where it says; a whole
//     record (length, kind, fields and CRC-32C all agreeing) found at one
//     of the offsets the chain of lengths leads to is taken. A damaged
//     length leads nowhere in particular, and the odds that a whole record
//     happens to lie where it leads are those of a CRC-32C collision.
//   - byte by byte: the first offset at which a whole record lies that is
//     followed by another whole record, by the exact end of the file, or by
//     a torn last record (one whose frame claims more bytes than are left).
//     Requiring two things to hold keeps bytes that happen to checksum
//     from being taken for a record.
//
// A whole record lying between two damaged stretches is kept when the
// lengths lead to it, and lost otherwise.
func (s *scanner) resync(off int64) (next int64, records int, found bool, err error) {
	p := off
	for i := 1; s.limit-p >= frameLen; i++ {
		fr, err := s.at(p, frameLen)
		if fr == nil || err != nil {
			return 0, 0, false, err
		}
		n := int64(binary.LittleEndian.Uint32(fr))
		if n == 0 || n > maxRecord || n > s.limit-p-frameLen {
			break
		}
		p += frameLen + n
		_, ok, err := s.parse(p)
		if err != nil {
			return 0, 0, false, err
		}
		if ok {
			return p, i, true, nil
		}
	}
	for q := off + 1; s.limit-q >= frameLen+minBody; q++ {
		end, ok, err := s.parse(q)
		if err != nil {
			return 0, 0, false, err
		}
		if !ok {
			continue
		}
		if end == s.limit {
			return q, 0, true, nil
		}
		if _, ok, err := s.parse(end); err != nil {
			return 0, 0, false, err
		} else if ok {
			return q, 0, true, nil
		}
		torn, err := s.tornAt(end)
		if err != nil {
			return 0, 0, false, err
		}
		if torn {
			return q, 0, true, nil
		}
	}
	return 0, 0, false, nil
}

// tornAt reports whether the bytes from off to the end of the file are a
// torn last record: too few for a frame, fewer than its length claims, or
// zeros (a file extended by a write whose data never reached the disk).
func (s *scanner) tornAt(off int64) (bool, error) {
	if s.limit-off < frameLen {
		return true, nil
	}
	fr, err := s.at(off, frameLen)
	if fr == nil || err != nil {
		return false, err
	}
	if n := int64(binary.LittleEndian.Uint32(fr)); n != 0 {
		return n <= maxRecord && n > s.limit-off-frameLen, nil
	}
	for p := off; p < s.limit; {
		b, err := s.at(p, int(min(s.limit-p, window)))
		if b == nil || err != nil {
			return false, err
		}
		for _, c := range b {
			if c != 0 {
				return false, nil
			}
		}
		p += int64(len(b))
	}
	return true, nil
}

// decode parses the body of a record (kind and fields).
func decode(b []byte) (record, bool) {
	var r record
	r.kind, b = b[0], b[1:]
	var ok bool
	if r.key, b, ok = cutString(b); !ok {
		return r, false
	}
	switch r.kind {
	case kindAppend:
		if len(b) < 8 {
			return r, false
		}
		r.deadline, r.data = int64(binary.LittleEndian.Uint64(b)), b[8:]
		return r, true
	case kindDelivered:
		if r.notifier, b, ok = cutString(b); !ok {
			return r, false
		}
		if r.token, b, ok = cutString(b); !ok {
			return r, false
		}
		return r, len(b) == 0
	case kindFinish:
		return r, len(b) == 0
	}
	return r, false
}

func cutString(b []byte) (s, rest []byte, ok bool) {
	if len(b) < 4 {
		return nil, b, false
	}
	n := binary.LittleEndian.Uint32(b)
	if uint64(n) > uint64(len(b)-4) {
		return nil, b, false
	}
	return b[4 : 4+n], b[4+n:], true
}

// load checks the header, or writes it to a new file, and replays the
// records into the index, cutting off a torn tail.
func (j *Journal) load() error {
	st, err := j.f.Stat()
	if err != nil {
		return err
	}
	size := st.Size()
	hdr := make([]byte, min(size, int64(headerLen)))
	if _, err := j.f.ReadAt(hdr, 0); err != nil {
		return fmt.Errorf("read header: %w", err)
	}
	want := header()
	if size < int64(headerLen) {
		// New, or its creation was cut short.
		if !bytes.HasPrefix(want, hdr) {
			return fmt.Errorf("not a ringside journal (it starts with %q)", hdr)
		}
		if err := j.f.Truncate(0); err != nil {
			return err
		}
		if _, err := j.f.WriteAt(want, 0); err != nil {
			return err
		}
		if err := j.f.Sync(); err != nil {
			return err
		}
		j.end = int64(headerLen)
		return flock.SyncDir(filepath.Dir(j.path))
	}
	if string(hdr[:len(magic)]) != magic {
		return fmt.Errorf("not a ringside journal (it starts with %q)", hdr[:len(magic)])
	}
	if v := binary.LittleEndian.Uint32(hdr[len(magic):]); v != version {
		return fmt.Errorf("journal format version %d; this ringside reads version %d", v, version)
	}
	s := newScanner(j.f, size)
	for {
		ok, err := s.scan()
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		j.index(string(s.rec.key), s.rec.kind, span{s.off, s.end - s.off})
	}
	for _, l := range j.live {
		j.liveBytes += bytesOf(l)
	}
	j.end = s.end
	j.size.Store(int64(len(j.live)))
	if len(s.damage) > 0 && j.repair(s.damage, size) {
		return nil // the file holds the live records, and nothing else
	}
	if s.end < size {
		j.log.Info("journal: cut off a torn tail", "file", j.path, "offset", s.end, "bytes", size-s.end)
		if err := j.f.Truncate(s.end); err != nil {
			return fmt.Errorf("cut off the torn tail: %w", err)
		}
	}
	return nil
}

// pending reads the live entries back from the file and finishes those
// whose deadline is not after now.
func (j *Journal) pending(now int64) ([]Entry, error) {
	type pend struct {
		Entry
		deadline int64
	}
	byKey := map[string]*pend{}
	s := newScanner(j.f, j.end)
	for {
		ok, err := s.scan()
		if err != nil {
			return nil, fmt.Errorf("journal: read: %w", err)
		}
		if !ok {
			break
		}
		r := &s.rec
		switch r.kind {
		case kindAppend:
			e := byKey[string(r.key)]
			if e == nil {
				e = &pend{Entry: Entry{Key: string(r.key), Delivered: map[[2]string]bool{}}}
				byKey[e.Key] = e
			}
			e.deadline, e.Data = r.deadline, bytes.Clone(r.data)
			e.Deadline = time.Unix(0, r.deadline)
		case kindDelivered:
			if e := byKey[string(r.key)]; e != nil {
				e.Delivered[[2]string{string(r.notifier), string(r.token)}] = true
			}
		case kindFinish:
			delete(byKey, string(r.key))
		}
	}
	var live []*pend
	var expired []op
	for _, e := range byKey {
		if e.deadline <= now {
			expired = append(expired, op{kind: kindFinish, key: e.Key})
			continue
		}
		live = append(live, e)
	}
	if len(expired) > 0 {
		if err := j.write(expired); err != nil {
			return nil, fmt.Errorf("journal: purge: %w", err)
		}
	}
	slices.SortFunc(live, func(a, b *pend) int {
		return cmp.Or(cmp.Compare(a.deadline, b.deadline), cmp.Compare(a.Key, b.Key))
	})
	out := make([]Entry, len(live))
	for i, e := range live {
		out[i] = e.Entry
	}
	return out, nil
}
