"""Shop locations and paired staff devices (phones by cookie, apps and tills by API key)."""
