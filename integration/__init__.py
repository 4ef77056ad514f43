"""What other government systems need to send requests to Wangge."""
