from medsam.cli import main

raise SystemExit(main())
