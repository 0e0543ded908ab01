package mount_test

import (
	"fmt"

	"github.com/ringfuse/ringfuse/mount"
)

func ExampleParseOptions() {
	// Words as they come from "-o allow_other,fsname=/srv,max_write=131072 -o io_uring".
	opts, rest, err := mount.ParseOptions([]string{"allow_other,fsname=/srv,max_write=131072", "io_uring"})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(opts.AllowOther, opts.FSName)
	fmt.Println(rest) // left for the server

	_, _, err = mount.ParseOptions([]string{"max_read=abc"})
	fmt.Println(err)
	// Output:
	// true /srv
	// [max_write=131072 io_uring]
	// mount: option max_read=abc: not a number: bad mount option
}
