package main

import "errors"

// applyUring selects the io_uring transport when -o io_uring was given.
func applyUring(c *config) error {
	if c.uring {
		return errors.New("-o io_uring: not available in this build yet")
	}
	return nil
}
