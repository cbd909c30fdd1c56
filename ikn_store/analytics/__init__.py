"""Analytics queries over readings and bookings."""
