-- Minimal Yuantus-compatible identity database: the two tables the scope inventory reads, exactly as in the
-- real identity schema (schema/identity.sql): same columns, types, NOT NULL flags, keys, indexes and FK names.
-- auth_organizations.id is a global primary key: two tenants cannot both have an org with id 'org-1'.

SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SET client_min_messages = warning;

CREATE TABLE public.auth_tenants (
    id character varying(64) NOT NULL,
    name character varying(200),
    is_active boolean NOT NULL,
    created_at timestamp without time zone NOT NULL
);

CREATE TABLE public.auth_organizations (
    id character varying(64) NOT NULL,
    tenant_id character varying(64) NOT NULL,
    name character varying(200),
    is_active boolean NOT NULL,
    created_at timestamp without time zone NOT NULL
);

ALTER TABLE ONLY public.auth_tenants ADD CONSTRAINT auth_tenants_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.auth_organizations ADD CONSTRAINT auth_organizations_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.auth_organizations ADD CONSTRAINT uq_tenant_org UNIQUE (tenant_id, id);
CREATE INDEX ix_auth_organizations_tenant_id ON public.auth_organizations USING btree (tenant_id);
ALTER TABLE ONLY public.auth_organizations
    ADD CONSTRAINT auth_organizations_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES public.auth_tenants(id);
