"""Personal data (152-ФЗ): a customer's export and erasure, the retention period of closed conversations."""
