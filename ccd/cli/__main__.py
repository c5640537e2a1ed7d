from ccd.cli.fast import main

main()
