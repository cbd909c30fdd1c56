from ikn.cli import main

main()
