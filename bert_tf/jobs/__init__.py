"""What each tools/ script runs: flags in, one job function out."""
