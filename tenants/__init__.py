"""Tenancy: the department, its tenants (communes, EPCI, department sites), sites, cameras, authorisations, forces."""
