"""HTTP controllers, one module per resource; each exports ROUTES, collected by api.app."""
