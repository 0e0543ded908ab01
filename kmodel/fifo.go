package kmodel

// fifo is a first-in, first-out queue that reuses its backing array, so a
// steady stream of pushes and pops does not allocate.
type fifo[T any] struct {
	buf  []T
	head int
}

func (f *fifo[T]) len() int { return len(f.buf) - f.head }

func (f *fifo[T]) push(v T) { f.buf = append(f.buf, v) }

func (f *fifo[T]) pop() T {
	var zero T
	v := f.buf[f.head]
	f.buf[f.head] = zero
	f.head++
	switch {
	case f.head == len(f.buf):
		f.buf, f.head = f.buf[:0], 0
	case f.head >= 1024 && 2*f.head >= len(f.buf):
		// Slide the live part down so the array does not grow forever
		// under a queue that never empties.
		n := copy(f.buf, f.buf[f.head:])
		clear(f.buf[n:])
		f.buf, f.head = f.buf[:n], 0
	}
	return v
}

// at returns the i-th oldest element.
func (f *fifo[T]) at(i int) T { return f.buf[f.head+i] }

// removeAt removes and returns the i-th oldest element.
func (f *fifo[T]) removeAt(i int) T {
	if i == 0 {
		return f.pop()
	}
	j := f.head + i
	v := f.buf[j]
	copy(f.buf[j:], f.buf[j+1:])
	var zero T
	f.buf[len(f.buf)-1] = zero
	f.buf = f.buf[:len(f.buf)-1]
	return v
}

// reset empties the queue.
func (f *fifo[T]) reset() {
	clear(f.buf)
	f.buf, f.head = f.buf[:0], 0
}

// each calls fn for every element, oldest first.
func (f *fifo[T]) each(fn func(T)) {
	for _, v := range f.buf[f.head:] {
		fn(v)
	}
}
