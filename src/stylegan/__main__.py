from stylegan.cli.main import main

main()
