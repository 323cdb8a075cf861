"""Installation and assembly booking: services, installers with working calendars, free slots and visits."""
