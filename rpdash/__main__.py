from rpdash.cli import main

raise SystemExit(main())
