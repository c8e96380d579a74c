from svgrft.cli.main import main

main()
