// Command sdash: see 'sdash --help' and docs/sdash.md.
package main

import "os"

func main() { os.Exit(command.Run(os.Args, os.Stdin, os.Stdout, os.Stderr)) }
