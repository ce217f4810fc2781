// Command swindow: see 'swindow --help' and the README.
package main

import "os"

func main() { os.Exit(command.Run(os.Args, os.Stdin, os.Stdout, os.Stderr)) }
