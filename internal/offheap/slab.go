package offheap

import (
	"errors"
	"fmt"
	"math/bits"
	"reflect"
	"unsafe"
)

// ErrFull is returned when a slab or an index cannot take another record.
var ErrFull = errors.New("offheap: table full")

// Slab is an array of records of type T outside the Go heap, with a
// bitmap of the slots in use. Alloc always returns the lowest free slot,
// so that the records that outlive a storm stay packed at the start and
// Trim can give back what lies above them.
//
// The zero Slab is not usable; see NewSlab. A Slab is not safe for
// concurrent use, except At, which only computes an address.
type Slab[T any] struct {
	r    region
	max  int
	size int
	// used has a bit set for every slot in use.
	used []uint64
	// lowest is the first word of used that may have a clear bit.
	lowest int
	n      int
	// high is one past the highest slot allocated since the last Trim.
	high int
}

// NewSlab returns a slab of at most max records. It reserves address space
// for all of them at the first Alloc, and uses memory only for the pages
// its records touch. It panics if T holds pointers (a programming error:
// the collector would not see them).
func NewSlab[T any](max int) *Slab[T] {
	var zero T
	if t := reflect.TypeOf(zero); hasPointers(t) {
		panic(fmt.Sprintf("offheap: %v holds pointers", t))
	}
	if max <= 0 || max > 1<<32 {
		panic("offheap: slab size out of range")
	}
	return &Slab[T]{max: max, size: int(unsafe.Sizeof(zero))}
}

// hasPointers reports whether a value of type t holds anything the
// garbage collector must see.
func hasPointers(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Array:
		return t.Len() > 0 && hasPointers(t.Elem())
	case reflect.Struct:
		for i := range t.NumField() {
			if hasPointers(t.Field(i).Type) {
				return true
			}
		}
		return false
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128:
		return false
	}
	return true
}

// Len returns the number of slots in use.
func (s *Slab[T]) Len() int { return s.n }

// At returns the record in slot i. i must be a slot Alloc returned (InUse
// checks one that comes from outside); the record of a freed slot reads as
// zero.
func (s *Slab[T]) At(i uint32) *T {
	return (*T)(unsafe.Add(unsafe.Pointer(unsafe.SliceData(s.r.mem)), uintptr(i)*uintptr(s.size)))
}

// InUse reports whether slot i holds a record. Any i is safe to ask about.
func (s *Slab[T]) InUse(i uint32) bool {
	w := int(i / 64)
	return w < len(s.used) && s.used[w]&(1<<(i%64)) != 0
}

// Alloc takes the lowest free slot and returns it with its record, which
// is zero. It fails with ErrFull when all max slots are in use, or when
// the kernel refuses memory.
func (s *Slab[T]) Alloc() (uint32, *T, error) {
	if s.r.mem == nil {
		if err := s.r.reserve(s.max * s.size); err != nil {
			return 0, nil, err
		}
	}
	w := s.lowest
	for w < len(s.used) && s.used[w] == ^uint64(0) {
		w++
	}
	if w == len(s.used) {
		s.used = append(s.used, 0)
	}
	i := w*64 + bits.TrailingZeros64(^s.used[w])
	if i >= s.max {
		s.lowest = w
		return 0, nil, ErrFull
	}
	if err := s.r.commit((i + 1) * s.size); err != nil {
		return 0, nil, err
	}
	s.used[w] |= 1 << (i % 64)
	s.lowest = w
	s.n++
	s.high = max(s.high, i+1)
	p := s.At(uint32(i))
	*p = *new(T) // Trim may have left it zero already, Free always does
	return uint32(i), p, nil
}

// Free releases slot i and zeroes its record. Freeing a slot not in use
// does nothing.
func (s *Slab[T]) Free(i uint32) {
	if !s.InUse(i) {
		return
	}
	*s.At(i) = *new(T)
	w := int(i / 64)
	s.used[w] &^= 1 << (i % 64)
	s.lowest = min(s.lowest, w)
	s.n--
}

// Trim gives back to the kernel every page of the slab that holds no
// record in use, and shrinks the bitmap to the highest slot in use. It
// costs time in proportion to the highest slot used since the last Trim,
// so it is meant for after a storm, not for every Free.
func (s *Slab[T]) Trim() {
	if s.r.mem == nil {
		return
	}
	top := 0 // one past the highest slot in use
	for w := len(s.used) - 1; w >= 0; w-- {
		if s.used[w] != 0 {
			top = w*64 + 64 - bits.LeadingZeros64(s.used[w])
			break
		}
	}
	// Pages wholly above the last record in use.
	s.r.discard(roundUp(top*s.size, pageSize), s.r.committed)
	// Holes below it: runs of pages whose slots are all free.
	run := -1 // start of the current run of free pages
	for p := 0; p+pageSize <= top*s.size; p += pageSize {
		first, last := p/s.size, (p+pageSize-1)/s.size
		switch free := s.freeRange(first, last); {
		case free && run < 0:
			run = p
		case !free && run >= 0:
			s.r.discard(run, p)
			run = -1
		}
	}
	if run >= 0 {
		s.r.discard(run, roundDown(top*s.size, pageSize))
	}
	if words := (top + 63) / 64; words < len(s.used)/2 {
		s.used = append([]uint64(nil), s.used[:words]...)
	} else {
		s.used = s.used[:words]
	}
	s.lowest = min(s.lowest, len(s.used))
	s.high = top
}

// High returns one past the highest slot allocated since the last Trim:
// what a Trim would scan.
func (s *Slab[T]) High() int { return s.high }

// freeRange reports whether slots first through last are all free.
func (s *Slab[T]) freeRange(first, last int) bool {
	for i := first; i <= last; i++ {
		if w := i / 64; i%64 == 0 && i+63 <= last && w < len(s.used) {
			if s.used[w] != 0 {
				return false
			}
			i += 63
			continue
		}
		if s.InUse(uint32(i)) {
			return false
		}
	}
	return true
}

// Slots returns a bound on the slots in use: every slot InUse reports is
// below it.
func (s *Slab[T]) Slots() int { return len(s.used) * 64 }

// Close unmaps the slab. No pointer from At may be used afterwards.
func (s *Slab[T]) Close() {
	s.r.unmap()
	s.used, s.lowest, s.n = nil, 0, 0
}
