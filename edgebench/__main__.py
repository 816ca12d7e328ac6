from edgebench.cli.main import main

main()
