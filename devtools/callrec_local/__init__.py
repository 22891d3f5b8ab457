"""Dev-only local AWS for callrec: KVS emulator, Connect producer and simulator, Lambda wiring. Never deployed."""
