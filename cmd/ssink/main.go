// Command ssink: see 'ssink --help' and docs/ssink.md.
package main

import "os"

func main() { os.Exit(command.Run(os.Args, os.Stdin, os.Stdout, os.Stderr)) }
