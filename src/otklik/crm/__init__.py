"""The shop's CRM (amoCRM, Bitrix24, RetailCRM): customers matched to CRM contacts by verified identities,
solved conversations written to the contact's timeline, the CRM's deals/orders cached for the customer page."""
