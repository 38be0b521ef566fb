from socialrec.cli.main import main

raise SystemExit(main())
